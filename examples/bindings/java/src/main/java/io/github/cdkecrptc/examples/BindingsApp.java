package io.github.cdkecrptc.examples;

import io.github.cdkecrptc.AuthenticatedUpstreamOptions;
import io.github.cdkecrptc.CacheRepositoryOptions;
import io.github.cdkecrptc.CachedImages;
import io.github.cdkecrptc.CreateUpstreamSecretOptions;
import io.github.cdkecrptc.ImageReference;
import io.github.cdkecrptc.PullThroughCacheRules;
import io.github.cdkecrptc.UnservedImageLevel;
import io.github.cdkecrptc.UpstreamCredentials;
import io.github.cdkecrptc.UpstreamRegistry;
import java.util.List;
import software.amazon.awscdk.App;
import software.amazon.awscdk.Aspects;
import software.amazon.awscdk.CfnOutput;
import software.amazon.awscdk.CfnTag;
import software.amazon.awscdk.Duration;
import software.amazon.awscdk.Environment;
import software.amazon.awscdk.Stack;
import software.amazon.awscdk.StackProps;
import software.amazon.awscdk.services.ecs.ContainerDefinitionOptions;
import software.amazon.awscdk.services.ecs.ContainerImage;
import software.amazon.awscdk.services.ecs.FargateTaskDefinition;
import software.amazon.awscdk.services.iam.Role;
import software.amazon.awscdk.services.iam.ServicePrincipal;

/**
 * The bindings example, in Java. examples/bindings/typescript/app.ts and examples/bindings/python/app.py build
 * the same stack; {@code npx projen bindings:test} synthesizes all three and fails if their templates differ.
 */
public final class BindingsApp {
    private BindingsApp() {
    }

    public static void main(final String[] args) {
        App app = new App();
        // A fixed account and Region make every image URI concrete; nothing is looked up, so this synthesizes offline.
        Stack stack = new Stack(app, "EcrPullThroughCacheBindings", StackProps.builder()
                .env(Environment.builder().account("111122223333").region("eu-west-1").build())
                .description("ECR pull through cache for EKS nodes, a build role and an ECS service")
                .build());

        // EKS worker nodes and a CI build role: both pull through the cache.
        Role nodeRole = Role.Builder.create(stack, "NodeRole")
                .assumedBy(new ServicePrincipal("ec2.amazonaws.com"))
                .build();
        Role buildRole = Role.Builder.create(stack, "BuildRole")
                .assumedBy(new ServicePrincipal("codebuild.amazonaws.com"))
                .build();

        PullThroughCacheRules cache = PullThroughCacheRules.Builder.create(stack, "Cache")
                .upstreams(List.of(
                        UpstreamRegistry.ecrPublic(),
                        UpstreamRegistry.kubernetes(),
                        UpstreamRegistry.quay(),
                        // Docker Hub and GHCR need credentials: the construct creates 'ecr-pullthroughcache/<prefix>' secrets.
                        UpstreamRegistry.dockerHub(AuthenticatedUpstreamOptions.builder()
                                .credentials(UpstreamCredentials.createSecret())
                                .build()),
                        UpstreamRegistry.githubContainerRegistry(AuthenticatedUpstreamOptions.builder()
                                .credentials(UpstreamCredentials.createSecret(CreateUpstreamSecretOptions.builder()
                                        .secretName("ecr-pullthroughcache/github")
                                        .build()))
                                .build())))
                .nodeRoles(List.of(nodeRole))
                .repositoryOptions(CacheRepositoryOptions.builder()
                        .untaggedImageExpiration(Duration.days(3))
                        .maxImageCount(50)
                        .resourceTags(List.of(CfnTag.builder().key("cost-center").value("platform").build()))
                        .build())
                .build();
        cache.grantPull(buildRole);

        // An ECS task definition written with public images: the Aspect moves them to the cache.
        FargateTaskDefinition task = FargateTaskDefinition.Builder.create(stack, "Web")
                .cpu(256)
                .memoryLimitMiB(512)
                .build();
        task.addContainer("nginx", ContainerDefinitionOptions.builder()
                .image(ContainerImage.fromRegistry("nginx:1.27"))
                .essential(true)
                .build());
        task.addContainer("exporter", ContainerDefinitionOptions.builder()
                .image(ContainerImage.fromRegistry("quay.io/prometheus/node-exporter:v1.9.1"))
                .essential(false)
                .build());
        Aspects.of(app).add(CachedImages.Builder.create()
                .cache(cache)
                .unservedImages(UnservedImageLevel.ERROR)
                .build());

        ImageReference pause = ImageReference.parse("registry.k8s.io/pause:3.10");
        CfnOutput.Builder.create(stack, "PauseImage").value(cache.imageUri(pause.toString())).build();
        CfnOutput.Builder.create(stack, "NginxImage").value(cache.imageUri("nginx:1.27")).build();
        CfnOutput.Builder.create(stack, "RegistryUri").value(cache.getRegistryUri()).build();

        app.synth();
    }
}
