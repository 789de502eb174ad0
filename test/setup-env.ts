// Tests stay quiet: structured logs are for operators, not for the test report.
process.env.POWERTOOLS_LOG_LEVEL ??= 'SILENT';
process.env.AWS_REGION ??= 'us-east-1';
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
// A client built without an endpoint must never look for instance credentials on the network.
process.env.AWS_EC2_METADATA_DISABLED = 'true';
// Metrics go to stdout as CloudWatch EMF in a Lambda function; the Lambda sandbox's processes
// (which inherit this environment) must not print them into the test report. Tracing needs
// AWS_EXECUTION_ENV, which tests never set, so it stays off.
process.env.POWERTOOLS_METRICS_DISABLED ??= 'true';
process.env.POWERTOOLS_DEV ??= 'false';
