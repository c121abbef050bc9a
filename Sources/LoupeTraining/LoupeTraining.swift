// Training: optimizers, the training loop, toy tasks and language models.
