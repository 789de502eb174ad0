/** Polls `what` until `ok` holds or `ms` pass, and returns the last value (the test then asserts on it). */
export async function until<T>(what: () => Promise<T> | T, ok: (value: T) => boolean, ms = 15_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const value = await what();
    if (ok(value) || Date.now() > end) return value;
    await new Promise((r) => setTimeout(r, 25));
  }
}
