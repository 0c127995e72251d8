"""Scripts that run jaxrl's agents to make offline datasets (`python -m jaxrl.datasets.generate`)."""
