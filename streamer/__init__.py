"""streamer: OCR'd page events on Kafka -> structured account records extracted with AWS Bedrock."""

__version__ = "0.1.0"
