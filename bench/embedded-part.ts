/**
 * What a bench part that runs the embedded service in the bench's own process starts from: its
 * environment set, the embedded record store and S3 chosen unless the part names an endpoint of
 * its own (none of another run's), and the service's modules loaded only then, so they read that
 * environment.
 */
export async function embeddedPart(env: Record<string, string>) {
  for (const name of ['S3_ENDPOINT', 'DYNAMODB_ENDPOINT']) if (!(name in env)) delete process.env[name];
  Object.assign(process.env, env);
  const { startEmbedded } = await import('../infra/local/embedded.js');
  const { PutObjectCommand } = await import('@aws-sdk/client-s3');
  const { makeS3Client } = await import('../shared/clients.js');
  const { readSettings } = await import('../shared/config.js');
  /** A client of the embedded S3, once the service has started it. */
  const s3Client = () => makeS3Client(readSettings());
  return { startEmbedded, PutObjectCommand, s3Client };
}
