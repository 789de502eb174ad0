/**
 * Timestamps in the original's wire format: Python's naive `datetime.isoformat()`,
 * `YYYY-MM-DDTHH:MM:SS.ffffff`, fraction left out when it is zero. Ours are always UTC.
 */
let lastMicros = 0n;

/** Microseconds since the epoch, strictly increasing within this process. */
export function nowMicros(): bigint {
  const wall = BigInt(Date.now()) * 1000n + (process.hrtime.bigint() / 1000n) % 1000n;
  lastMicros = wall > lastMicros ? wall : lastMicros + 1n;
  return lastMicros;
}

export function formatTimestamp(micros: bigint): string {
  const date = new Date(Number(micros / 1000n));
  const base = date.toISOString().slice(0, 19);
  const fraction = Number(micros % 1000000n);
  return fraction === 0 ? base : `${base}.${String(fraction).padStart(6, '0')}`;
}

/** The manifest's `created` format: `YYYY-MM-DD HH:MM:SS`. */
export function formatManifestTime(micros: bigint): string {
  return new Date(Number(micros / 1000n)).toISOString().slice(0, 19).replace('T', ' ');
}

/** A fixed-width form that sorts in time order (record listings use it). */
export function sortableTimestamp(micros: bigint): string {
  return micros.toString().padStart(20, '0');
}
