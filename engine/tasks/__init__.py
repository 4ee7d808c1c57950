"""Model families behind one interface: ``base.Task``, ``registry.get_task``, checkpoints."""
