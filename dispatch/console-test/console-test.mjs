// The privacy officer's console in headless Chromium, after a demo day (run by run.sh).
//
// Logs in with the operator token, opens a closed job, checks its reveals (field names) and its
// verified shred receipt, looks for the identity-key flag, downloads both exports, saves a
// screenshot, checks that no demo customer value appears anywhere, and logs out. Exits non-zero
// on the first failed check. Never prints the token.
import { chromium } from 'playwright-core';
import { readFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';

const base = process.env.CONSOLE_BASE;
const token = process.env.JOBSEAL_OPERATOR_TOKEN;
const out = process.env.CONSOLE_OUT;
if (!base || !token || !out) throw new Error('CONSOLE_BASE, JOBSEAL_OPERATOR_TOKEN and CONSOLE_OUT are required');
mkdirSync(out, { recursive: true });

// Parts of every customer value and report `jobseal demo` writes (cli/src/demo.rs: fake_job,
// the reports of vault.close), none of which the console may show.
const canaries = [
  'Test Customer', '+33 1 00 00', 'rue de l', 'door on the left', '1111A-', '2222A-', '3333A-',
  'Fake note', 'ring twice', 'Fibre terminal installed', 'Router replaced offline', 'WO-DEMO-',
];

let checks = 0;
function check(ok, what) {
  if (!ok) throw new Error(`FAILED: ${what}`);
  checks += 1;
  console.log(`  ok: ${what}`);
}

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});
try {
  const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1500, height: 1000 } });
  const page = await context.newPage();
  const foreign = [];
  page.on('request', (r) => { if (!r.url().startsWith(base)) foreign.push(r.url()); });
  const seen = [];
  const keep = async () => seen.push(await page.content());

  await page.goto(`${base}/console/jobs`);
  check(page.url() === `${base}/console/login`, 'without a session the console sends the browser to its login page');
  await keep();

  await page.fill('#token', 'not-the-token');
  await Promise.all([page.waitForLoadState(), page.click('button[type=submit]')]);
  check((await page.textContent('.error') || '').includes('not the operator token'), 'a wrong token is refused');

  await page.fill('#token', token);
  await Promise.all([page.waitForURL(`${base}/console/jobs`), page.click('button[type=submit]')]);
  check(true, 'the operator token logs in');
  const cookies = await context.cookies();
  const session = cookies.find((c) => c.name === 'jobseal_console');
  check(session && session.httpOnly && session.sameSite === 'Strict' && session.path === '/console',
    'the session cookie is HttpOnly, SameSite=Strict, Path=/console');
  check(session.value !== token, 'the session cookie is not the token');
  await keep();

  const rows = await page.$$eval('table.jobs tbody tr', (trs) => trs.map((tr) => ({
    href: tr.querySelector('a').getAttribute('href'),
    cells: [...tr.querySelectorAll('td')].map((td) => td.textContent.trim()),
  })));
  check(rows.length === 3, `the demo day's 3 jobs are listed (${rows.length})`);
  const closed = rows.find((r) => r.cells[3] === 'closed' && r.cells[7] === 'verified' && Number(r.cells[6]) > 0);
  check(Boolean(closed), 'a closed job with reveals and a verified receipt is listed');

  await page.click(`a[href="${closed.href}"]`);
  await page.waitForURL(`${base}${closed.href}`);
  await keep();
  check((await page.textContent('#receipt-status')).trim() === 'verified', 'the job page shows the verified receipt');
  const reveals = await page.$$eval('table.timeline tr.ev-reveal', (trs) => trs.map((tr) => tr.textContent));
  check(reveals.length > 0, `the timeline lists the job's reveals (${reveals.length})`);
  check(reveals.some((r) => r.includes('door_code')) && reveals.some((r) => r.includes('inside')),
    'a reveal names its fields and says it was inside the access window');
  const receipt = await page.textContent('table.timeline tr.ev-receipt');
  check(receipt.includes('shred receipt verified'), 'the timeline holds the verified shred receipt');
  const identity = await page.$('#identity-flag');
  if (identity) {
    check((await identity.textContent()).includes('identity key'), 'the identity-key delivery is flagged');
  } else {
    check((await page.textContent('dl.summary')).includes('every sheet sealed to a one-time prekey'),
      'no identity-key delivery in this job (the demo seals every sheet to a prekey), and the page says so');
  }
  const shot = join(out, 'job.png');
  await page.screenshot({ path: shot, fullPage: true });

  const download = async (ext) => {
    const [dl] = await Promise.all([page.waitForEvent('download'), page.click(`a[href$="export.${ext}"]`)]);
    const path = join(out, dl.suggestedFilename());
    await dl.saveAs(path);
    return readFileSync(path, 'utf8');
  };
  const json = JSON.parse(await download('json'));
  const jobId = closed.href.split('/').pop();
  check(json.format === 'jobseal.console.job-record.v1' && json.job.job_id === jobId, 'the JSON export is this job\'s record');
  check(json.job.receipt.verified === true && json.job.report && !('text' in json.job.report),
    'the JSON export holds the verified receipt and no report text');
  seen.push(JSON.stringify(json));
  const csv = await download('csv');
  check(csv.startsWith('job_id,at,event,') && csv.includes(',reveal,'), 'the CSV export lists the timeline');
  seen.push(csv);

  await page.click('nav a[href="/console/devices"]');
  await page.waitForURL(`${base}/console/devices`);
  await keep();
  check((await page.textContent('table.devices tbody')).includes('intact'), 'the device\'s audit chain is intact');

  const all = seen.join('\n');
  for (const c of canaries) check(!all.includes(c), `no page or export contains the demo value part "${c}"`);
  check(foreign.length === 0, `no request left the dispatch server (${foreign.join(' ')})`);

  await Promise.all([page.waitForURL(`${base}/console/login`), page.click('nav form.logout button')]);
  await page.goto(`${base}/console/jobs`);
  check(page.url() === `${base}/console/login`, 'after logout the console asks for a login again');
  console.log(`console test: ${checks} checks passed; screenshot ${shot}`);
} finally {
  await browser.close();
}
