"""Runnable example jobs (see README): ``pyq -C config/queue.yml`` loads ``examples.jobs``."""
