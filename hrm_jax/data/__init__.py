"""HRM-Text data: record sources, tokenizers, the sample layout and the Grain pipeline
(mixture → shuffle → layout → first-fit packing → per-host batches)."""
