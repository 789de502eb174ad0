/** Retries an API call that timed out, as the original did (3 retries, waits of 1 s, 2 s, 3 s). */
import { logger } from '../../logger.js';
import { isTimeout } from './api-errors.js';

export interface RetryOptions {
  retries: number;
  delayMs: number;
  /** What the call does, for the log. */
  what: string;
  sleep?: (ms: number) => Promise<void>;
}

const defaultSleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export async function retryOnTimeout<T>(call: () => Promise<T>, options: RetryOptions): Promise<T> {
  const sleep = options.sleep ?? defaultSleep;
  for (let attempt = 0; ; attempt++) {
    try {
      return await call();
    } catch (error) {
      if (attempt >= options.retries || !isTimeout(error)) throw error;
      logger.warn('kubernetes API timed out; retrying', { what: options.what, attempt: attempt + 1, error: String(error) });
      if (options.delayMs > 0) await sleep(options.delayMs * (attempt + 1));
    }
  }
}
