/**
 * Lambda refuses a function whose environment is over 4 KB: all keys and values together, as
 * deployed. The check runs at synth on each function's resolved environment; a value that is
 * still a CloudFormation reference (a name or ARN made at deploy time) counts as the longest such
 * name or ARN could be here, so a template that passes cannot fail at CreateFunction.
 */
import { Stack } from 'aws-cdk-lib';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type { IConstruct } from 'constructs';

export const MAX_ENVIRONMENT_BYTES = 4096;

/** What one reference (Ref, Fn::GetAtt, an import) may grow to once deployed. */
const REFERENCE_BYTES = 200;
/** What a pseudo parameter (region, account, partition, URL suffix) may be. */
const PSEUDO_PARAMETER_BYTES = 32;

/** Bytes of a resolved value: literal text as it is, references at their bound. */
function bytesOf(value: unknown): number {
  if (typeof value === 'string') return Buffer.byteLength(value);
  if (typeof value === 'number' || typeof value === 'boolean') return String(value).length;
  if (Array.isArray(value)) return value.reduce((sum: number, v) => sum + bytesOf(v), 0);
  const o = value as Record<string, unknown>;
  // AWS::Region, AWS::AccountId, AWS::Partition, AWS::URLSuffix.
  if (typeof o.Ref === 'string' && o.Ref.startsWith('AWS::')) return PSEUDO_PARAMETER_BYTES;
  if (Array.isArray(o['Fn::Join'])) {
    const [separator, parts] = o['Fn::Join'] as [string, unknown[]];
    return Array.isArray(parts) ? parts.reduce((sum: number, v) => sum + bytesOf(v), 0) + Math.max(0, parts.length - 1) * Buffer.byteLength(separator) : REFERENCE_BYTES;
  }
  return REFERENCE_BYTES;
}

/** Each variable's size (key and value), largest first. */
export function environmentSizes(variables: Record<string, unknown>): { name: string; bytes: number }[] {
  return Object.entries(variables)
    .map(([name, value]) => ({ name, bytes: Buffer.byteLength(name) + bytesOf(value) }))
    .sort((a, b) => b.bytes - a.bytes);
}

/** The synth error for a function's environment over the limit, naming its largest variables; undefined when it fits. */
export function environmentSizeError(path: string, variables: Record<string, unknown>): string | undefined {
  const sizes = environmentSizes(variables);
  const total = sizes.reduce((sum, s) => sum + s.bytes, 0);
  if (total <= MAX_ENVIRONMENT_BYTES) return undefined;
  const largest = sizes.slice(0, 3).map((s) => `${s.name} (${s.bytes} bytes)`).join(', ');
  return `${path}: its environment is ${total} bytes, above Lambda's limit of ${MAX_ENVIRONMENT_BYTES} for all keys and values together; the largest variables: ${largest}. Move large values to a secret or parameter (e.g. remoteNodeKnownHostsSecretArn).`;
}

/** Fails the synth when the function's environment would not fit (run as a construct validation). */
export function checkEnvironmentSize(scope: IConstruct, fn: lambda.Function): void {
  scope.node.addValidation({
    validate: () => {
      const resolved = Stack.of(fn).resolve((fn.node.defaultChild as lambda.CfnFunction).environment) as { variables?: Record<string, unknown> } | undefined;
      const error = environmentSizeError(fn.node.path, resolved?.variables ?? {});
      return error ? [error] : [];
    },
  });
}
