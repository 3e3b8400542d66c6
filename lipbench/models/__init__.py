"""Generator/critic pairs. Architectures never mention Lipschitz methods: methods act on them from outside."""
