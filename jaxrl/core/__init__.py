"""The small shared core of jaxrl: only what two or more algorithms use."""
