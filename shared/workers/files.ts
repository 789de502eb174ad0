/** Small file helpers the workers share. */
import { readFile } from 'node:fs/promises';

/** The file's text; undefined when it does not exist (any other error is thrown). */
export async function readIfPresent(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}
