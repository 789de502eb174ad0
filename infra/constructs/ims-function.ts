/**
 * Every Lambda function of the service, with its defaults set in this one place: Node 22 on
 * arm64, an ESM bundle built by the local esbuild (never Docker), X-Ray tracing, and its own log
 * group with a month's retention (created by the stack, so no LogRetention custom resource).
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Duration } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { LogLevel, NodejsFunction, OutputFormat, type BundlingOptions } from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { acknowledgeFunctionDefaults } from './nag.js';

export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '../..');

/** `api` answers API Gateway (which gives up after 30 s); `workflow` runs one state-machine stage. */
export type ImsFunctionKind = 'api' | 'workflow';

const SIZING: Record<ImsFunctionKind, { memorySize: number; timeout: Duration }> = {
  api: { memorySize: 1024, timeout: Duration.seconds(29) },
  // Below the state machine's 300 s task timeout, so a slow stage fails as a Lambda timeout,
  // which the task's retry and catch handle, instead of an abandoned invocation still running.
  workflow: { memorySize: 1024, timeout: Duration.seconds(280) },
};

/**
 * esbuild emits ESM, but some bundled CommonJS dependencies still call `require` for Node
 * built-ins; ESM has no `require`, so the bundle makes one.
 */
const ESM_REQUIRE_BANNER = "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);";

const BUNDLING: BundlingOptions = {
  format: OutputFormat.ESM,
  mainFields: ['module', 'main'],
  banner: ESM_REQUIRE_BANNER,
  minify: true,
  sourceMap: true,
  sourcesContent: false,
  // The SDK goes into the bundle: one minified file starts about twice as fast as the runtime's
  // node_modules copy (measured by `npm run bench`), and the versions are the ones we test.
  bundleAwsSDK: true,
  // ssh2's optional native addons: without them ssh2 uses its pure-JavaScript crypto.
  externalModules: ['cpu-features', '*.node'],
  // esbuild's size report for 13 bundles only buries the synth output; warnings still show.
  logLevel: LogLevel.WARNING,
};

export interface ImsFunctionProps {
  /** The handler module, relative to the repository root (e.g. `functions/api/jobs.ts`). */
  entry: string;
  kind: ImsFunctionKind;
  description: string;
  environment?: Record<string, string>;
  /**
   * Directories the code reads at run time, copied next to the bundle: repository path →
   * path in the bundle. esbuild keeps `import.meta.url`, so `new URL('./x/', import.meta.url)`
   * finds `x/` beside index.mjs.
   */
  files?: Record<string, string>;
}

function copyFiles(files: Record<string, string>): BundlingOptions['commandHooks'] {
  return {
    beforeBundling: () => [],
    beforeInstall: () => [],
    afterBundling: (inputDir, outputDir) =>
      Object.entries(files).map(([from, to]) => `mkdir -p "${outputDir}/${to}" && cp -R "${inputDir}/${from}/." "${outputDir}/${to}/"`),
  };
}

export class ImsFunction extends Construct {
  readonly fn: NodejsFunction;
  readonly logGroup: logs.LogGroup;

  constructor(scope: Construct, id: string, props: ImsFunctionProps) {
    super(scope, id);
    this.logGroup = new logs.LogGroup(this, 'Logs', { retention: logs.RetentionDays.ONE_MONTH });
    // An explicit role instead of AWSLambdaBasicExecutionRole: that managed policy lets a
    // function write to every log group of the account, this one only to its own.
    const role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `Execution role: ${props.description}`,
    });
    this.logGroup.grantWrite(role);

    this.fn = new NodejsFunction(this, 'Function', {
      entry: join(REPO_ROOT, props.entry),
      handler: 'handler',
      projectRoot: REPO_ROOT,
      depsLockFilePath: join(REPO_ROOT, 'package-lock.json'),
      description: props.description,
      runtime: lambda.Runtime.NODEJS_22_X,
      architecture: lambda.Architecture.ARM_64,
      ...SIZING[props.kind],
      role,
      logGroup: this.logGroup,
      tracing: lambda.Tracing.ACTIVE,
      bundling: props.files ? { ...BUNDLING, commandHooks: copyFiles(props.files) } : BUNDLING,
      environment: {
        POWERTOOLS_SERVICE_NAME: 'ims',
        // Stack traces point into the TypeScript sources, not the minified bundle.
        NODE_OPTIONS: '--enable-source-maps',
        ...props.environment,
      },
    });
    acknowledgeFunctionDefaults(this);
  }
}
