/**
 * Makes the local worker available under IMS_JOB_WORKER=local (the default of `npm start`).
 * Its code loads only when a job first needs it.
 */
import { registerWorker } from '../../wiring.js';
import { localSettingsFromEnv } from './settings.js';

registerWorker('local', async () => {
  const { LocalWorker } = await import('./local-worker.js');
  return new LocalWorker(localSettingsFromEnv(process.env));
});
