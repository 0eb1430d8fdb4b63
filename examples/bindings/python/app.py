#!/usr/bin/env python3
"""The bindings example, in Python.

examples/bindings/typescript/app.ts and examples/bindings/java/.../BindingsApp.java build the same stack;
`npx projen bindings:test` synthesizes all three and fails if their templates differ.
"""
import aws_cdk as cdk
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from cdk_ecr_pull_through_cache import (
    CacheRepositoryOptions,
    CachedImages,
    ImageReference,
    PullThroughCacheRules,
    UnservedImageLevel,
    UpstreamCredentials,
    UpstreamRegistry,
)

app = cdk.App()
# A fixed account and Region make every image URI concrete; nothing is looked up, so this synthesizes offline.
stack = cdk.Stack(
    app,
    "EcrPullThroughCacheBindings",
    env=cdk.Environment(account="111122223333", region="eu-west-1"),
    description="ECR pull through cache for EKS nodes, a build role and an ECS service",
)

# EKS worker nodes and a CI build role: both pull through the cache.
node_role = iam.Role(stack, "NodeRole", assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"))
build_role = iam.Role(stack, "BuildRole", assumed_by=iam.ServicePrincipal("codebuild.amazonaws.com"))

cache = PullThroughCacheRules(
    stack,
    "Cache",
    upstreams=[
        UpstreamRegistry.ecr_public(),
        UpstreamRegistry.kubernetes(),
        UpstreamRegistry.quay(),
        # Docker Hub and GHCR need credentials: the construct creates 'ecr-pullthroughcache/<prefix>' secrets.
        UpstreamRegistry.docker_hub(credentials=UpstreamCredentials.create_secret()),
        UpstreamRegistry.github_container_registry(
            credentials=UpstreamCredentials.create_secret(secret_name="ecr-pullthroughcache/github"),
        ),
    ],
    node_roles=[node_role],
    repository_options=CacheRepositoryOptions(
        untagged_image_expiration=cdk.Duration.days(3),
        max_image_count=50,
        resource_tags=[cdk.CfnTag(key="cost-center", value="platform")],
    ),
)
cache.grant_pull(build_role)

# An ECS task definition written with public images: the Aspect moves them to the cache.
task = ecs.FargateTaskDefinition(stack, "Web", cpu=256, memory_limit_mib=512)
task.add_container("nginx", image=ecs.ContainerImage.from_registry("nginx:1.27"), essential=True)
task.add_container(
    "exporter",
    image=ecs.ContainerImage.from_registry("quay.io/prometheus/node-exporter:v1.9.1"),
    essential=False,
)
cdk.Aspects.of(app).add(CachedImages(cache=cache, unserved_images=UnservedImageLevel.ERROR))

pause = ImageReference.parse("registry.k8s.io/pause:3.10")
cdk.CfnOutput(stack, "PauseImage", value=cache.image_uri(pause.to_string()))
cdk.CfnOutput(stack, "NginxImage", value=cache.image_uri("nginx:1.27"))
cdk.CfnOutput(stack, "RegistryUri", value=cache.registry_uri)

app.synth()
