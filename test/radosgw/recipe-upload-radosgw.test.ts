/**
 * Recipe uploads on a real S3 with real bucket notifications: radosgw (one-node Ceph) pushes
 * them over HTTP to a receiver on loopback, which stands in for S3 invoking the Lambda. Records
 * live in dynalite, archives in radosgw (S3_ENDPOINT, path-style, radosgw's credentials).
 *
 * Not part of `npm test`: .ci/radosgw-tests.sh starts the cluster, sets S3_ENDPOINT,
 * S3_ACCESS_KEY and S3_SECRET_KEY, and runs this file.
 */
import { createHash, randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { GetBucketNotificationConfigurationCommand, PutBucketNotificationConfigurationCommand } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { CreateTopicCommand, DeleteTopicCommand, SNSClient } from '@aws-sdk/client-sns';
import type { S3Event } from 'aws-lambda';
import { handleS3Event } from '#functions/events/recipe-upload.js';
import { ScriptedWorker } from '../helpers/scripted-worker.js';
import { startTestService, type TestService } from '../helpers/service.js';

const endpoint = process.env.S3_ENDPOINT;
const credentials = { accessKeyId: process.env.S3_ACCESS_KEY ?? '', secretAccessKey: process.env.S3_SECRET_KEY ?? '' };

let svc: TestService;
let receiver: Server;
let sns: SNSClient;
let topicArn: string;
let keyId: string;
/** Every notification radosgw pushed, as it arrived. */
const received: S3Event[] = [];

function startReceiver(): Promise<Server> {
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
    req.on('end', () => {
      received.push(JSON.parse(body) as S3Event);
      res.end();
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

beforeAll(async () => {
  if (!endpoint || !credentials.accessKeyId) throw new Error('run through .ci/radosgw-tests.sh: S3_ENDPOINT and radosgw credentials are not set');
  process.env.IMS_JOB_WORKER = 'scripted';
  receiver = await startReceiver();
  svc = await startTestService({ workers: { scripted: () => new ScriptedWorker((bucket, key, body, metadata) => svc.putObject(bucket, key, body, metadata)) } }); // creates the buckets in radosgw
  sns = new SNSClient({ region: 'us-east-1', endpoint, credentials });
  const topic = await sns.send(
    new CreateTopicCommand({ Name: `ims-recipe-uploads-${randomUUID()}`, Attributes: { 'push-endpoint': `http://127.0.0.1:${(receiver.address() as AddressInfo).port}` } }),
  );
  topicArn = topic.TopicArn!;
  // What the CDK stack configures on the IMS bucket, with a topic in place of the Lambda.
  await svc.s3.send(
    new PutBucketNotificationConfigurationCommand({
      Bucket: 'ims',
      NotificationConfiguration: {
        TopicConfigurations: [
          {
            Id: 'recipe-uploads',
            TopicArn: topicArn,
            Events: ['s3:ObjectCreated:Put', 's3:ObjectCreated:Post', 's3:ObjectCreated:CompleteMultipartUpload'],
            Filter: { Key: { FilterRules: [{ Name: 'prefix', Value: 'recipes/' }, { Name: 'suffix', Value: '.tgz' }] } },
          },
        ],
      },
    }),
  );
  keyId = (await svc.request('POST', '/v3/public-keys', { name: 'builder', public_key: 'ssh-ed25519 AAAA' })).body.id;
}, 60_000);

afterAll(async () => {
  await sns?.send(new DeleteTopicCommand({ TopicArn: topicArn })).catch(() => undefined);
  sns?.destroy();
  await svc?.stop();
  receiver?.close();
  delete process.env.IMS_JOB_WORKER;
});

const md5 = (text: string) => createHash('md5').update(text).digest('hex');
const about = (key: string) => received.filter((e) => e.Records.some((r) => r.s3.object.key === key));
const recipesNamed = async (name: string): Promise<any[]> => (await svc.request('GET', '/v3/recipes')).body.filter((r: { name: string }) => r.name === name);
const jobsOf = async (recipeId: string): Promise<any[]> =>
  (await svc.request('GET', '/v3/jobs')).body.filter((j: { artifact_id: string }) => j.artifact_id === recipeId);

/** Waits for the first notification about `key`, then a while longer for any duplicate. */
async function notificationsAbout(key: string): Promise<S3Event[]> {
  const end = Date.now() + 15_000;
  while (about(key).length === 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
  await new Promise((r) => setTimeout(r, 1500));
  return about(key);
}

const metadata = (name: string) => ({
  'ims-name': name,
  'ims-recipe-type': 'kiwi-ng',
  'ims-linux-distribution': 'sles15',
  'ims-build': 'true',
  'ims-public-key-id': keyId,
  // The scripted worker ends this job at once; only that it exists matters here.
  'ims-image-name': 'fail-build',
});

describe('recipe uploads notified by radosgw', () => {
  const name = `rgw-${randomUUID()}`;
  const key = `recipes/${name}/recipe.tgz`;
  let event: S3Event;

  test('the bucket keeps the notification configuration', async () => {
    const config = await svc.s3.send(new GetBucketNotificationConfigurationCommand({ Bucket: 'ims' }));
    expect(config.TopicConfigurations?.map((t) => t.Id)).toEqual(['recipe-uploads']);
  });

  test('a matching upload is notified exactly once; other keys are not notified', async () => {
    await svc.putObject('ims', key, 'radosgw archive', metadata(name));
    await svc.putObject('ims', `other/${name}/recipe.tgz`, 'elsewhere', metadata(name));
    await svc.putObject('ims', `recipes/${name}/recipe.zip`, 'other suffix', metadata(name));
    const events = await notificationsAbout(key);
    expect(events).toHaveLength(1);
    expect(about(`other/${name}/recipe.tgz`)).toEqual([]);
    expect(about(`recipes/${name}/recipe.zip`)).toEqual([]);
    event = events[0];
    expect(event.Records).toHaveLength(1);
    expect(event.Records[0]).toMatchObject({ eventSource: 'ceph:s3', eventName: 'ObjectCreated:Put', s3: { bucket: { name: 'ims' }, object: { key } } });
  });

  test('the handler given the notification registers one recipe and starts one build', async () => {
    const [outcome] = await handleS3Event(event, svc.app);
    expect(outcome.result).toBe('registered');
    const [recipe, ...others] = await recipesNamed(name);
    expect(others).toEqual([]);
    expect(recipe).toMatchObject({ recipe_type: 'kiwi-ng', linux_distribution: 'sles15', link: { path: `s3://ims/${key}`, etag: md5('radosgw archive'), type: 's3' } });
    expect(await jobsOf(recipe.id)).toHaveLength(1);
  });

  test('a re-delivery of the notification creates nothing new', async () => {
    expect(await handleS3Event(event, svc.app)).toEqual([{ result: 'repeat' }]);
    const recipes = await recipesNamed(name);
    expect(recipes).toHaveLength(1);
    expect(await jobsOf(recipes[0].id)).toHaveLength(1);
  });

  test('a multipart upload is notified as CompleteMultipartUpload and registers its recipe', async () => {
    const bigName = `rgw-multipart-${randomUUID()}`;
    const bigKey = `recipes/${bigName}/recipe.tgz`;
    const body = Buffer.alloc(6 * 1024 * 1024, 'r');
    await new Upload({ client: svc.s3, params: { Bucket: 'ims', Key: bigKey, Body: body, Metadata: metadata(bigName) }, partSize: 5 * 1024 * 1024 }).done();
    const [notified, ...more] = await notificationsAbout(bigKey);
    expect(more).toEqual([]);
    expect(notified.Records[0].eventName).toBe('ObjectCreated:CompleteMultipartUpload');
    const [outcome] = await handleS3Event(notified, svc.app);
    expect(outcome.result).toBe('registered');
    const [recipe] = await recipesNamed(bigName);
    // A multipart ETag: the MD5 of the part MD5s, and the number of parts.
    expect(recipe.link.etag).toMatch(/^[0-9a-f]{32}-2$/);
    expect(await handleS3Event(notified, svc.app)).toEqual([{ result: 'repeat' }]);
  });
});
