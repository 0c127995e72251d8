"""Networks too large for one algorithm file that several algorithms share: the small
class-conditional digit generator (diffusion and consistency model), its samplers, the reward
networks (`generative`), and the script that trains and caches them (`pretrain`)."""
