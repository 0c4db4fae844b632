"""Deployment: the container image (``deploy/Dockerfile``), Docker Compose (``deploy/docker-compose.yml``) and the
AWS ECS/Fargate stack (``deploy/aws``). The Python here is what those need at run time: the image's requirement
list and the containers' health probe. Nothing here imports boto3 except ``deploy.aws``."""
