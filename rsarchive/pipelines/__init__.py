"""The item pipeline: Page -> split -> clean -> store, one small class per step."""
