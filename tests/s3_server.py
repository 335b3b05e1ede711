"""A real S3-compatible server on 127.0.0.1 for object-storage index tests (moto's server
mode), and the LanceDB storage options that point at it."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

BUCKET = "supportbot-index"


@dataclass
class LocalS3:
    endpoint: str
    server: object

    @property
    def storage_options(self) -> dict[str, str]:
        return {"aws_endpoint": self.endpoint, "allow_http": "true", "aws_access_key_id": "testing",
                "aws_secret_access_key": "testing", "aws_region": "us-east-1"}

    def uri(self, prefix: str) -> str:
        return f"s3://{BUCKET}/{prefix}"

    def env(self, prefix: str) -> dict[str, str]:
        """What a separate supportbot process needs to use the same index."""
        return {"SUPPORTBOT_INDEX__URI": self.uri(prefix),
                "SUPPORTBOT_INDEX__STORAGE_OPTIONS": json.dumps(self.storage_options)}

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id="testing",
                            aws_secret_access_key="testing", region_name="us-east-1")

    def stop(self) -> None:
        self.server.stop()  # type: ignore[attr-defined]


def start() -> LocalS3:
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    s3 = LocalS3(f"http://{host}:{port}", server)
    s3.client().create_bucket(Bucket=BUCKET)
    return s3
