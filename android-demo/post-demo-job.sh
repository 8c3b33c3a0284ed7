#!/usr/bin/env bash
# Assigns a fake job to a device through the reference dispatch server's operator API, with a
# slot that started 30 minutes ago (so its customer details are inside their access window now).
# For trying the Android and iOS demos by hand; every customer value is obviously fake.
#
#   JOBSEAL_OPERATOR_TOKEN=... bash android-demo/post-demo-job.sh DEVICE_ID [DISPATCH_URL] [WORK_ORDER]
#
# DEVICE_ID is shown on the demo's sync screen after enrolment. DISPATCH_URL defaults to
# http://127.0.0.1:8787, where `jobseal-dispatch serve` listens by default.
set -euo pipefail
device="${1:?usage: $0 DEVICE_ID [DISPATCH_URL] [WORK_ORDER]}"
url="${2:-http://127.0.0.1:8787}"
work_order="${3:-WO-DEMO-$(date -u +%H%M%S)}"
token="${JOBSEAL_OPERATOR_TOKEN:?set JOBSEAL_OPERATOR_TOKEN to the operator token of the server}"

# GNU date first, then BSD date (macOS).
iso() { date -u -d "@$1" +%Y-%m-%dT%H:%M:%SZ 2>/dev/null || date -u -r "$1" +%Y-%m-%dT%H:%M:%SZ; }
now=$(date -u +%s)
start=$(iso $((now - 1800)))
end=$(iso $((now + 5400)))
expiry=$(iso $((now + 12 * 3600)))
job_id=$(cat /proc/sys/kernel/random/uuid 2>/dev/null || uuidgen | tr 'A-Z' 'a-z')

read -r -d '' sheet <<JSON || true
{"format": "jobseal.sheet.v1", "job_id": "$job_id", "version": 1, "work_order": "$work_order",
 "window": {"start": "$start", "end": "$end"},
 "access": {"open_before_minutes": 60, "close_after_minutes": 120, "hard_expiry": "$expiry"},
 "work": {"summary": "Fibre installation (demo job)", "tasks": ["Fit the optical outlet", "Activate the line"], "equipment": ["Optical outlet"]},
 "site_area": "Lyon 3e",
 "customer": [
   {"name": "customer_name", "kind": "name", "value": "Demo Customer", "reveal_in": ["en-route", "on-site"]},
   {"name": "relay_phone", "kind": "relay-phone", "value": "+33 1 00 00 00 01", "reveal_in": ["en-route", "on-site"]},
   {"name": "address", "kind": "address", "value": "1 rue de l'Exemple, 69003 Lyon", "reveal_in": ["en-route", "on-site"]},
   {"name": "door_code", "kind": "door-code", "value": "0000A", "reveal_in": ["on-site"]}
 ]}
JSON
curl -sS --fail-with-body -X POST "$url/v1/operator/jobs" \
    -H "authorization: Bearer $token" -H "content-type: application/json" \
    --data "{\"device_id\": \"$device\", \"sheet\": $sheet}"
echo
echo "job $job_id ($work_order) assigned to $device; sync the phone to receive it"
