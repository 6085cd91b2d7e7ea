#!/bin/bash
# LocalStack ready hook (mounted at /etc/localstack/init/ready.d): create SmartCourse's bucket(s).
# S3_BUCKET may list several buckets separated by commas; default: smartcourse.
set -euo pipefail
IFS=',' read -r -a buckets <<<"${S3_BUCKET:-smartcourse}"
for bucket in "${buckets[@]}"; do
  [ -n "$bucket" ] || continue
  if awslocal s3api head-bucket --bucket "$bucket" >/dev/null 2>&1; then
    echo "bucket $bucket already exists"
  else
    awslocal s3 mb "s3://$bucket"
  fi
done
