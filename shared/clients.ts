/**
 * AWS SDK clients built from settings: pointed at real AWS, or at any compatible endpoint. Each
 * is traced (X-Ray subsegments per call) in a Lambda function (shared/observability.ts).
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import { SFNClient } from '@aws-sdk/client-sfn';
import { Agent } from 'node:https';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import type { Settings } from './config.js';
import { traced } from './observability.js';

export function makeDynamoClient(settings: Settings): DynamoDBClient {
  return traced(new DynamoDBClient({
    region: settings.region,
    ...(settings.dynamoEndpoint
      ? { endpoint: settings.dynamoEndpoint, credentials: settings.endpointCredentials }
      : {}),
  }));
}

/**
 * `signWith` replaces the configured credentials (the signing key of pre-signed URLs). That client
 * only signs, and stays untraced: a trace header must never be part of a pre-signed request.
 */
export function makeS3Client(settings: Settings, signWith?: S3ClientConfig['credentials']): S3Client {
  const credentials =
    signWith ??
    (settings.s3AccessKey && settings.s3SecretKey ? { accessKeyId: settings.s3AccessKey, secretAccessKey: settings.s3SecretKey } : undefined);
  const client = new S3Client({
    region: settings.region,
    ...(settings.s3Endpoint ? { endpoint: settings.s3Endpoint, forcePathStyle: true } : {}),
    ...(credentials ? { credentials } : {}),
    ...(settings.s3SslValidate ? {} : { requestHandler: new NodeHttpHandler({ httpsAgent: new Agent({ rejectUnauthorized: false }) }) }),
    // Streamed uploads stay plain (no aws-chunked trailers): S3-compatible servers need it, AWS accepts it.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  return signWith ? client : traced(client);
}

export function makeSfnClient(settings: Settings): SFNClient {
  return traced(new SFNClient({
    region: settings.region,
    ...(settings.sfnEndpoint
      ? { endpoint: settings.sfnEndpoint, credentials: settings.endpointCredentials }
      : {}),
  }));
}
