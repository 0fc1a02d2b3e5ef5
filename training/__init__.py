"""GenFX training: procedural collapse data, ETL to webdataset shards, LoRA / sim-pass ControlNet training."""
