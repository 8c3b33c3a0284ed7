// The vault's events as a Kotlin Flow: the library's hand-written Kotlin, compiled with the
// generated bindings into the JVM test module (bindings/kotlin) and the Android AAR
// (bindings/android). A screen collects `vault.events()` to redraw when a sheet arrives, a job
// moves, a job is shredded or a sync ends, instead of polling the vault.
package io.jobseal

import kotlinx.coroutines.channels.Channel
import kotlinx.coroutines.channels.awaitClose
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.buffer
import kotlinx.coroutines.flow.callbackFlow

/**
 * Every [VaultEvent] from the moment collection starts until it stops, in the order the changes
 * were made. Each event is told after its change is durable; none carries a customer value.
 *
 * Cold: each collection adds its own [VaultListener] ([JobVault.addListener]) and removes it when
 * the collecting coroutine ends or is cancelled. Events are buffered without bound, so a slow
 * collector loses none and never blocks the vault call that made the change (events are small
 * and few: one per job change or sync). Hard expiry is enforced by every vault call, so a
 * [VaultEvent.JobShredded] with state `EXPIRED` can follow any call; shreds made while the
 * vault was opening come from the first `sweep()` instead.
 *
 * Stop collecting before `close()`ing the vault: a collection still running then receives no more
 * events and does not end by itself, and while it runs it keeps the vault object reachable.
 */
fun JobVault.events(): Flow<VaultEvent> =
    callbackFlow {
        val id = addListener(
            object : VaultListener {
                override fun onEvent(event: VaultEvent) {
                    trySend(event)
                }
            },
        )
        // After `close()` the vault is gone and so is its listener: removing it then would throw
        // inside the collector's cancellation.
        awaitClose { runCatching { removeListener(id) } }
    }.buffer(Channel.UNLIMITED)
