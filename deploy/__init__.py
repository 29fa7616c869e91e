"""Running rayhook: the `rayhook` CLI, the local launcher behind `rayhook up`,
the gunicorn configuration, Kubernetes manifests."""
