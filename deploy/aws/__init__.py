"""The AWS deployment: a CloudFormation stack (``stack.yaml``) and the command that deploys it (``deploy.py``)."""
