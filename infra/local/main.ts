/** `npm start`: the whole service on this machine, no cloud account and no other setup. */
import { logger } from '#shared/logger.js';
import { remoteNodeSettingsFromEnv } from '#shared/workers/remote-node/settings.js';
import { EMBEDDED_S3_CREDENTIALS, startEmbedded } from './embedded.js';
import { jobKindsReport } from './job-kinds.js';

const dataDir = process.env.IMS_DATA_DIR || './.ims-data';
const service = await startEmbedded({
  host: process.env.HOST || '127.0.0.1',
  port: Number(process.env.PORT || 8080),
  s3Port: Number(process.env.S3_PORT || 8081),
  dataDir,
  sweepOrphanedWork: true,
});

logger.info('IMS is listening', {
  url: service.url,
  s3Endpoint: service.s3Endpoint,
  s3Credentials: service.s3Endpoint?.includes('127.0.0.1') ? EMBEDDED_S3_CREDENTIALS : undefined,
  recordStore: service.recordStore,
  dynamoEndpoint: service.dynamoEndpoint,
  dataDir,
});
process.stdout.write(`IMS API: ${service.url}  S3: ${service.s3Endpoint}  data: ${dataDir}\n`);

const jobs = jobKindsReport(service.app.config.jobWorker, remoteNodeSettingsFromEnv(process.env));
if (jobs.canRun.length === 2) logger.info('job kinds this host can run', { ...jobs });
else logger.warn('job kinds this host can run', { ...jobs });

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    void service.stop().then(() => process.exit(0));
  });
}
