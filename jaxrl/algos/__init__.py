"""One file per algorithm. Each defines `Config`, `make_train(config) -> Trainer` and `main()`."""
