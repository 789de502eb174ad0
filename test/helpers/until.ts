/** Resolves after `ms` milliseconds. */
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `what` every `everyMs` until `ok` holds or `ms` pass, and returns the last value (the test then asserts on it). */
export async function until<T>(what: () => Promise<T> | T, ok: (value: T) => boolean, ms = 15_000, everyMs = 25): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const value = await what();
    if (ok(value) || Date.now() > end) return value;
    await sleep(everyMs);
  }
}

/**
 * `until` with other defaults, for a file whose waits are all of one kind (jobs running real
 * tools wait longer and poll less often).
 */
export function untilWith(defaults: { ms: number; everyMs: number }) {
  return <T>(what: () => Promise<T> | T, ok: (value: T) => boolean, ms = defaults.ms): Promise<T> => until(what, ok, ms, defaults.everyMs);
}
