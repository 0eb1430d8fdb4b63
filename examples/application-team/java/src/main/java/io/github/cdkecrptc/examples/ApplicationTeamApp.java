package io.github.cdkecrptc.examples;

import io.github.cdkecrptc.CachePrefix;
import io.github.cdkecrptc.CachedImages;
import io.github.cdkecrptc.IPullThroughCacheRules;
import io.github.cdkecrptc.PullThroughCacheRules;
import io.github.cdkecrptc.PullThroughCacheRulesAttributes;
import java.util.List;
import software.amazon.awscdk.App;
import software.amazon.awscdk.Aspects;
import software.amazon.awscdk.CfnOutput;
import software.amazon.awscdk.Environment;
import software.amazon.awscdk.Stack;
import software.amazon.awscdk.StackProps;
import software.amazon.awscdk.services.ecs.ContainerDefinitionOptions;
import software.amazon.awscdk.services.ecs.ContainerImage;
import software.amazon.awscdk.services.ecs.FargateTaskDefinition;
import software.amazon.awscdk.services.iam.Role;
import software.amazon.awscdk.services.iam.ServicePrincipal;

/**
 * An application team's app, in Java: imports the platform team's cache by its attributes and uses imageUri and
 * grantPull. examples/application-team/typescript/app.ts and python/app.py build the same stack.
 */
public final class ApplicationTeamApp {
    private ApplicationTeamApp() {
    }

    public static void main(final String[] args) {
        App app = new App();
        Stack stack = new Stack(app, "ApplicationTeam", StackProps.builder()
                .env(Environment.builder().account("111122223333").region("eu-west-1").build())
                .description("An application team pulling through the platform team's ECR pull through cache")
                .build());

        // The prefixes the platform team's cache serves, copied from its app (`cache.mapping.prefixes`).
        IPullThroughCacheRules cache = PullThroughCacheRules.fromPullThroughCacheRulesAttributes(stack, "Cache",
                PullThroughCacheRulesAttributes.builder()
                        .prefixes(List.of(
                                CachePrefix.builder().registry("docker.io").ecrRepositoryPrefix("docker-hub").build(),
                                CachePrefix.builder().registry("quay.io").ecrRepositoryPrefix("quay").build(),
                                CachePrefix.builder().registry("public.ecr.aws").ecrRepositoryPrefix("ecr-public").build()))
                        .taggedRepositories(true)
                        .build());

        // A CI role that pulls images by their cache URIs.
        Role ciRole = Role.Builder.create(stack, "CiRole")
                .assumedBy(new ServicePrincipal("codebuild.amazonaws.com"))
                .build();
        cache.grantPull(ciRole);

        // A task written with the cache URI; the Aspect moves the second container and grants the execution role.
        FargateTaskDefinition task = FargateTaskDefinition.Builder.create(stack, "Api")
                .cpu(256)
                .memoryLimitMiB(512)
                .build();
        task.addContainer("api", ContainerDefinitionOptions.builder()
                .image(ContainerImage.fromRegistry(cache.imageUri("nginx:1.27")))
                .essential(true)
                .build());
        task.addContainer("metrics", ContainerDefinitionOptions.builder()
                .image(ContainerImage.fromRegistry("quay.io/prometheus/node-exporter:v1.9.1"))
                .essential(false)
                .build());
        Aspects.of(app).add(CachedImages.Builder.create().cache(cache).build());

        CfnOutput.Builder.create(stack, "NginxImage").value(cache.imageUri("nginx:1.27")).build();

        app.synth();
    }
}
