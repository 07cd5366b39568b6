# The `daedalus` bucket on MinIO, its access policy and the service's own
# user. Apply from the operations workstation:
#   export MINIO_USER=... MINIO_PASSWORD=...   (MinIO admin, from Vault)
#   terraform init && terraform apply -var daedalus_secret_key="$(vault kv get -field=secret_key secret/daedalus/s3)"
# Provider: aminueza/minio (MinIO's S3 and admin APIs).

terraform {
  required_version = ">= 1.5"
  required_providers {
    minio = {
      source  = "aminueza/minio"
      version = ">= 2.5.0"
    }
  }
}

variable "minio_server" {
  description = "MinIO API host:port"
  type        = string
  default     = "minio.ouranos.helu.ca:443"
}

variable "daedalus_secret_key" {
  description = "Secret key of the daedalus MinIO user (Vault secret/daedalus/s3)"
  type        = string
  sensitive   = true
}

provider "minio" {
  minio_server = var.minio_server
  minio_ssl    = true
  # minio_user and minio_password come from MINIO_USER and MINIO_PASSWORD.
}

resource "minio_s3_bucket" "daedalus" {
  bucket         = "daedalus"
  acl            = "private"
  object_locking = false
}

# Old versions are kept so an accidental delete or overwrite can be undone;
# the backup mirror (deploy/README.md) is the copy that survives MinIO.
resource "minio_s3_bucket_versioning" "daedalus" {
  bucket = minio_s3_bucket.daedalus.bucket
  versioning_configuration {
    status = "Enabled"
  }
}

resource "minio_iam_user" "daedalus" {
  name   = "daedalus"
  secret = var.daedalus_secret_key
}

# Only what Daedalus does: put, get, delete and list objects, and multipart
# uploads, in its own bucket.
resource "minio_iam_policy" "daedalus" {
  name = "daedalus-bucket"
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Effect   = "Allow"
        Action   = ["s3:ListBucket", "s3:GetBucketLocation", "s3:ListBucketMultipartUploads"]
        Resource = ["arn:aws:s3:::${minio_s3_bucket.daedalus.bucket}"]
      },
      {
        Effect = "Allow"
        Action = [
          "s3:GetObject", "s3:PutObject", "s3:DeleteObject",
          "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts",
        ]
        Resource = ["arn:aws:s3:::${minio_s3_bucket.daedalus.bucket}/*"]
      },
    ]
  })
}

resource "minio_iam_user_policy_attachment" "daedalus" {
  user_name   = minio_iam_user.daedalus.id
  policy_name = minio_iam_policy.daedalus.id
}

output "bucket" {
  value = minio_s3_bucket.daedalus.bucket
}
