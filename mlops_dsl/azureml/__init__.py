"""What mlops does on Azure at run time, over REST: the model registry and the guarded rollout.

The renderers (mlops_dsl/azure/) write Terraform and call nothing; these modules call Azure.
"""
