"""Published AWS list prices the cost model uses: us-east-1, on-demand, no free tier, no savings plan.

This is the one place prices live. When AWS changes a price, change it here and update ``TAKEN_ON``.
Each figure is the first (smallest-volume) tier, which is what a site of this size pays.
"""

from __future__ import annotations

from dataclasses import dataclass

TAKEN_ON = "2026-11-23"
"""The date these prices were read from AWS's public pricing pages."""

REGION = "us-east-1"


@dataclass(frozen=True)
class Price:
    """One published unit price and where it is published."""

    dollars: float
    unit: str
    source: str


API_GATEWAY_REST_REQUEST = Price(
    3.50 / 1_000_000, "REST API request (first 333 million a month)", "https://aws.amazon.com/api-gateway/pricing/"
)
LAMBDA_REQUEST = Price(0.20 / 1_000_000, "Lambda request", "https://aws.amazon.com/lambda/pricing/")
LAMBDA_ARM64_GB_SECOND = Price(
    0.0000133334, "Lambda arm64 GB-second (first 7.5 billion a month)", "https://aws.amazon.com/lambda/pricing/"
)
DYNAMODB_WRITE_REQUEST_UNIT = Price(
    0.625 / 1_000_000, "DynamoDB on-demand write request unit", "https://aws.amazon.com/dynamodb/pricing/on-demand/"
)
DYNAMODB_READ_REQUEST_UNIT = Price(
    0.125 / 1_000_000, "DynamoDB on-demand read request unit", "https://aws.amazon.com/dynamodb/pricing/on-demand/"
)
DYNAMODB_STREAMS_READ_BY_LAMBDA = Price(
    0.0,
    "DynamoDB Streams GetRecords made by a Lambda trigger (not charged)",
    "https://aws.amazon.com/dynamodb/pricing/on-demand/",
)
CLOUDWATCH_LOGS_INGESTED_GB = Price(
    0.50, "CloudWatch Logs ingestion, GB (Lambda logs, first 10 TB)", "https://aws.amazon.com/cloudwatch/pricing/"
)
DATA_TRANSFER_OUT_GB = Price(
    0.09, "data transfer out to the internet, GB (after the first 100 GB a month)",
    "https://aws.amazon.com/ec2/pricing/on-demand/",
)  # fmt: skip

ALL_PRICES: tuple[Price, ...] = (
    API_GATEWAY_REST_REQUEST,
    LAMBDA_REQUEST,
    LAMBDA_ARM64_GB_SECOND,
    DYNAMODB_WRITE_REQUEST_UNIT,
    DYNAMODB_READ_REQUEST_UNIT,
    DYNAMODB_STREAMS_READ_BY_LAMBDA,
    CLOUDWATCH_LOGS_INGESTED_GB,
    DATA_TRANSFER_OUT_GB,
)
