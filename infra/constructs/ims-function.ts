/**
 * Every Lambda function of the service, with its defaults set in this one place: Node 22 on
 * arm64, an ESM bundle built by the local esbuild (never Docker), X-Ray tracing, and its own log
 * group (created by the stack, so no LogRetention custom resource).
 * Optionally in a VPC, with reserved concurrency or an on-failure destination for its
 * asynchronous invocations.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Duration } from 'aws-cdk-lib';
import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { LogLevel, NodejsFunction, OutputFormat, type BundlingOptions } from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { checkEnvironmentSize } from './environment-size.js';
import { acknowledgeFunctionDefaults, acknowledgeVpcExecution } from './nag.js';
import { FUNCTION_SIZING, type ImsFunctionKind } from './function-sizing.js';

export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '../..');

export type { ImsFunctionKind } from './function-sizing.js';

const SIZING: Record<ImsFunctionKind, { memorySize: number; timeout: Duration }> = {
  api: { memorySize: FUNCTION_SIZING.api.memoryMiB, timeout: Duration.seconds(FUNCTION_SIZING.api.timeoutSeconds) },
  workflow: { memorySize: FUNCTION_SIZING.workflow.memoryMiB, timeout: Duration.seconds(FUNCTION_SIZING.workflow.timeoutSeconds) },
};

/**
 * esbuild emits ESM, but some bundled CommonJS dependencies still call `require` for Node
 * built-ins or look at `__dirname` (ssh2 does, for its optional addon); ESM has neither, so the
 * bundle makes them.
 */
export const ESM_REQUIRE_BANNER = [
  "import { createRequire as __createRequire } from 'node:module';",
  "import { fileURLToPath as __fileURLToPath } from 'node:url';",
  "import { dirname as __pathDirname } from 'node:path';",
  'const require = __createRequire(import.meta.url);',
  'const __filename = __fileURLToPath(import.meta.url);',
  'const __dirname = __pathDirname(__filename);',
].join(' ');

/**
 * Libraries the code imports only on first use (`await import(...)`), each bundled into a file of
 * its own: the Kubernetes client (about 3 MB minified) and ssh2. A handler's bundle stays small
 * and starts fast; a process loads a library only when a job first needs that worker. The
 * library's bundle goes to `node_modules/<name>/index.mjs` in the asset, with a package.json,
 * so Node resolves the bare `import('<name>')` left in the handler's bundle to it.
 */
export const LAZY_LIBRARIES: Record<string, string> = {
  '@kubernetes/client-node': 'infra/constructs/lazy-libraries/kubernetes-client.ts',
  ssh2: 'infra/constructs/lazy-libraries/ssh2.ts',
};

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
  // ssh2's optional native addons: without them ssh2 uses its pure-JavaScript crypto. The lazy
  // libraries get bundles of their own (LAZY_LIBRARIES).
  externalModules: ['cpu-features', '*.node', ...Object.keys(LAZY_LIBRARIES)],
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
  /** Where the function runs when it must reach private networks (the cluster, the nodes). */
  network?: FunctionNetwork;
  /** At most this many concurrent invocations (for functions whose work fans out). */
  reservedConcurrentExecutions?: number;
  /** Asynchronous invocations: retries, then this destination for the failed events. */
  onFailure?: lambda.IDestination;
  /** Retries of a failed asynchronous invocation (2 by default, as Lambda's own default). */
  retryAttempts?: number;
}

export interface FunctionNetwork {
  vpc: ec2.IVpc;
  subnets: ec2.ISubnet[];
  securityGroups: ec2.ISecurityGroup[];
}

/** Shell commands that bundle each lazy library the handler's bundle imports, beside it. */
function bundleLazyLibraries(inputDir: string, outputDir: string): string[] {
  const esbuild = `"${inputDir}/node_modules/.bin/esbuild"`;
  return Object.entries(LAZY_LIBRARIES).map(([name, entry]) => {
    const dir = `${outputDir}/node_modules/${name}`;
    const pkg = JSON.stringify({ name, type: 'module', exports: './index.mjs' });
    const build = [
      esbuild,
      `"${inputDir}/${entry}"`,
      '--bundle --minify --platform=node --target=node22 --format=esm --main-fields=module,main --log-level=warning',
      "--external:cpu-features '--external:*.node'",
      `--banner:js="${ESM_REQUIRE_BANNER}"`,
      `--outfile="${dir}/index.mjs"`,
    ].join(' ');
    // Only when the handler's bundle imports it (esbuild keeps the bare specifier, double-quoted).
    return `if grep -qF '"${name}"' "${outputDir}/index.mjs"; then mkdir -p "${dir}" && ${build} && printf '%s' '${pkg}' > "${dir}/package.json"; fi`;
  });
}

function commandHooks(files: Record<string, string> = {}): BundlingOptions['commandHooks'] {
  return {
    beforeBundling: () => [],
    beforeInstall: () => [],
    afterBundling: (inputDir, outputDir) => [
      ...Object.entries(files).map(([from, to]) => `mkdir -p "${outputDir}/${to}" && cp -R "${inputDir}/${from}/." "${outputDir}/${to}/"`),
      ...bundleLazyLibraries(inputDir, outputDir),
    ],
  };
}

export class ImsFunction extends Construct {
  readonly fn: NodejsFunction;
  readonly logGroup: logs.LogGroup;

  constructor(scope: Construct, id: string, props: ImsFunctionProps) {
    super(scope, id);
    // Retention and encryption: the stack's, as for every log group (logRetentionDays, customerManagedKey).
    this.logGroup = new logs.LogGroup(this, 'Logs');
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
      bundling: { ...BUNDLING, commandHooks: commandHooks(props.files) },
      ...(props.network
        ? { vpc: props.network.vpc, vpcSubnets: { subnets: props.network.subnets }, securityGroups: props.network.securityGroups }
        : {}),
      reservedConcurrentExecutions: props.reservedConcurrentExecutions,
      ...(props.onFailure ? { onFailure: props.onFailure, retryAttempts: 2, maxEventAge: Duration.hours(6) } : {}),
      ...(props.retryAttempts !== undefined ? { retryAttempts: props.retryAttempts } : {}),
      environment: {
        POWERTOOLS_SERVICE_NAME: 'ims',
        POWERTOOLS_METRICS_NAMESPACE: 'IMS',
        // Stack traces point into the TypeScript sources, not the minified bundle.
        NODE_OPTIONS: '--enable-source-maps',
        ...props.environment,
      },
    });
    // Active tracing, with its grant in a policy of its own: X-Ray's actions take no resource, so
    // that policy's `*` is acknowledged there and a `*` anywhere else in the role still fails cdk-nag.
    (this.fn.node.defaultChild as lambda.CfnFunction).tracingConfig = { mode: lambda.Tracing.ACTIVE };
    const tracing = new iam.Policy(this, 'Tracing', {
      statements: [new iam.PolicyStatement({ actions: ['xray:PutTraceSegments', 'xray:PutTelemetryRecords'], resources: ['*'] })],
    });
    role.attachInlinePolicy(tracing);
    acknowledgeFunctionDefaults(this.fn, tracing);
    checkEnvironmentSize(this, this.fn);
    if (props.network) {
      // Lambda adds the function's network interfaces with the role's own rights (ENI actions take no resource).
      role.addManagedPolicy(iam.ManagedPolicy.fromAwsManagedPolicyName('service-role/AWSLambdaVPCAccessExecutionRole'));
      acknowledgeVpcExecution(role);
    }
  }
}
