/**
 * Runs `each` over the items with at most `limit` at once, for bulk operations whose items are
 * independent of each other. Every item runs even when others fail; the first failure is
 * thrown once all have ended.
 */
export async function eachConcurrently<T>(items: AsyncIterable<T> | Iterable<T>, limit: number, each: (item: T) => Promise<void>): Promise<void> {
  const running = new Set<Promise<void>>();
  const failures: unknown[] = [];
  for await (const item of items) {
    const one: Promise<void> = each(item)
      .catch((error: unknown) => void failures.push(error))
      .finally(() => running.delete(one));
    running.add(one);
    if (running.size >= limit) await Promise.race(running);
  }
  await Promise.all(running);
  if (failures.length > 0) throw failures[0];
}
