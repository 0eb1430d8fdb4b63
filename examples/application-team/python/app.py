#!/usr/bin/env python3
"""An application team's app, in Python: imports the platform team's cache by its attributes and uses
image_uri and grant_pull. The same stack as ../typescript/app.ts and ../java/.../ApplicationTeamApp.java."""
import aws_cdk as cdk
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from cdk_ecr_pull_through_cache import CachedImages, CachePrefix, PullThroughCacheRules

app = cdk.App()
stack = cdk.Stack(
    app,
    "ApplicationTeam",
    env=cdk.Environment(account="111122223333", region="eu-west-1"),
    description="An application team pulling through the platform team's ECR pull through cache",
)

# The prefixes the platform team's cache serves, copied from its app (`cache.mapping.prefixes`).
cache = PullThroughCacheRules.from_pull_through_cache_rules_attributes(
    stack,
    "Cache",
    prefixes=[
        CachePrefix(registry="docker.io", ecr_repository_prefix="docker-hub"),
        CachePrefix(registry="quay.io", ecr_repository_prefix="quay"),
        CachePrefix(registry="public.ecr.aws", ecr_repository_prefix="ecr-public"),
    ],
    tagged_repositories=True,
)

# A CI role that pulls images by their cache URIs.
ci_role = iam.Role(stack, "CiRole", assumed_by=iam.ServicePrincipal("codebuild.amazonaws.com"))
cache.grant_pull(ci_role)

# A task written with the cache URI; the Aspect moves the second container and grants the execution role.
task = ecs.FargateTaskDefinition(stack, "Api", cpu=256, memory_limit_mib=512)
task.add_container("api", image=ecs.ContainerImage.from_registry(cache.image_uri("nginx:1.27")), essential=True)
task.add_container(
    "metrics",
    image=ecs.ContainerImage.from_registry("quay.io/prometheus/node-exporter:v1.9.1"),
    essential=False,
)
cdk.Aspects.of(app).add(CachedImages(cache=cache))

cdk.CfnOutput(stack, "NginxImage", value=cache.image_uri("nginx:1.27"))

app.synth()
