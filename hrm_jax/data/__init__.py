"""HRM-Text data: records, tokenizers, the sample layout (packing and the Grain pipeline
arrive with the rest of issue #5)."""
