/** `npm start`: the whole service on this machine, no cloud account and no other setup. */
import { logger } from '#shared/logger.js';
import { EMBEDDED_S3_CREDENTIALS, startEmbedded } from './embedded.js';

const dataDir = process.env.IMS_DATA_DIR || './.ims-data';
const service = await startEmbedded({
  host: process.env.HOST || '127.0.0.1',
  port: Number(process.env.PORT || 8080),
  s3Port: Number(process.env.S3_PORT || 8081),
  dataDir,
});

logger.info('IMS is listening', {
  url: service.url,
  s3Endpoint: service.s3Endpoint,
  s3Credentials: service.s3Endpoint?.includes('127.0.0.1') ? EMBEDDED_S3_CREDENTIALS : undefined,
  dynamoEndpoint: service.dynamoEndpoint,
  dataDir,
});
process.stdout.write(`IMS API: ${service.url}  S3: ${service.s3Endpoint}  data: ${dataDir}\n`);

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    void service.stop().then(() => process.exit(0));
  });
}
