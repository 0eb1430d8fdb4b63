/**
 * ecr-ptc on Dockerfiles read as BuildKit reads them: ARG defaults taken whole by FROM, heredocs, continuations.
 */
import { rewriteDockerfile } from '../src/cli/dockerfile';
import { Outcome } from '../src/cli/judge';
import { ImageMapping } from '../src/image-mapping';

const REGISTRY = '111122223333.dkr.ecr.eu-west-1.amazonaws.com';
const mapping = new ImageMapping({ registryUri: REGISTRY });
const rewriting = { mapping, cacheStatus: (image: string) => image.startsWith(`${REGISTRY}/`) };
const checking = { cacheStatus: (image: string) => image.startsWith(`${REGISTRY}/`) };

function rewrite(text: string) {
  const result = rewriteDockerfile(text, rewriting);
  // every rewrite is a fixed point, and the result passes check
  expect(rewriteDockerfile(result.output, rewriting).output).toBe(result.output);
  return result;
}

describe('ARG defaults', () => {
  test('rewritten when every FROM takes the argument whole ($X, ${X}, with --platform and AS)', () => {
    const result = rewrite([
      '# syntax=docker/dockerfile:1',
      'ARG BASE_IMAGE=docker.io/library/ubuntu:24.04',
      'ARG RUNTIME="gcr.io/distroless/static:nonroot"',
      'ARG TOOLS=\'quay.io/org/tools:1\'',
      'FROM --platform=$BUILDPLATFORM ${BASE_IMAGE} AS build',
      'FROM $BASE_IMAGE',
      'FROM ${TOOLS} as tools',
      'FROM ${RUNTIME}',
      '',
    ].join('\n'));
    expect(result.output).toBe([
      `# syntax=${REGISTRY}/docker-hub/docker/dockerfile:1`,
      `ARG BASE_IMAGE=${REGISTRY}/docker-hub/library/ubuntu:24.04`,
      'ARG RUNTIME="gcr.io/distroless/static:nonroot"',
      `ARG TOOLS='${REGISTRY}/quay/org/tools:1'`,
      'FROM --platform=$BUILDPLATFORM ${BASE_IMAGE} AS build',
      'FROM $BASE_IMAGE',
      'FROM ${TOOLS} as tools',
      'FROM ${RUNTIME}',
      '',
    ].join('\n'));
    // one finding per default, on its ARG line; the FROM lines that take it whole add none
    // (and the frontend of # syntax= on line 1)
    expect(result.findings.map(f => [f.line, f.outcome]))
      .toEqual([[1, Outcome.REWRITTEN], [2, Outcome.REWRITTEN], [3, Outcome.UNSERVED], [4, Outcome.REWRITTEN]]);
    // check on the rewritten file: the defaults are cached, the gcr.io one is not
    expect(rewriteDockerfile(result.output, checking).findings.map(f => [f.line, f.outcome]))
      .toEqual([[1, Outcome.CACHED], [2, Outcome.CACHED], [3, Outcome.UNSERVED], [4, Outcome.CACHED]]);
  });

  test('left alone when a FROM uses it inside a longer reference, and that FROM is reported', () => {
    const text = 'ARG BASE=ubuntu\nARG TAG=24.04\nFROM ${BASE}\nFROM ${BASE}:${TAG}\n';
    const result = rewrite(text);
    expect(result.output).toBe(text);
    expect(result.findings).toEqual([
      { line: 3, image: '${BASE}', outcome: Outcome.LEFT_ALONE, note: 'image from a build argument: its default is also used inside a longer reference by FROM on line 4' },
      { line: 4, image: '${BASE}:${TAG}', outcome: Outcome.LEFT_ALONE, note: 'image from a build argument: the reference is built from ARG BASE and ARG TAG, so it is whole only at build time' },
    ]);
  });

  test('no default, a default after the first FROM, a default declared twice: left alone with the reason', () => {
    expect(rewrite('ARG BASE\nFROM ${BASE}\n').findings[0].note).toBe('image from a build argument: ARG BASE has no default before the first FROM');
    expect(rewrite('FROM alpine:3 AS a\nARG LATE=nginx:1\nFROM ${LATE}\n').findings[1].note)
      .toBe('image from a build argument: ARG LATE has no default before the first FROM');
    const twice = rewrite('ARG BASE=nginx:1\nARG BASE=nginx:2\nFROM $BASE\n');
    expect(twice.output).toBe('ARG BASE=nginx:1\nARG BASE=nginx:2\nFROM $BASE\n');
    expect(twice.findings[0].note).toBe('default of ARG BASE, used by FROM on line 3: declared with a default twice (lines 1 and 2)');
    // declared again without a default: the first default stands, and is the one rewritten
    expect(rewrite('ARG BASE=alpine:3\nARG BASE\nFROM $BASE\n').output).toBe(`ARG BASE=${REGISTRY}/docker-hub/library/alpine:3\nARG BASE\nFROM $BASE\n`);
  });

  test('a default that names a stage or scratch is not an image; ARGs no FROM uses are not looked at', () => {
    const text = 'ARG GO_VERSION=1.26\nARG FINAL=scratch\nARG STAGE=build\nFROM golang:1.26 AS build\nFROM ${STAGE}\nFROM ${FINAL}\n';
    const result = rewrite(text);
    expect(result.output).toBe(text.replace('FROM golang:1.26', `FROM ${REGISTRY}/docker-hub/library/golang:1.26`));
    expect(result.findings.map(f => f.line)).toEqual([4]);
  });

  test('several arguments on one ARG line; the others keep their bytes', () => {
    const result = rewrite('ARG  A=1  BASE=alpine:3.20   C="x y"\nFROM $BASE\n');
    expect(result.output).toBe(`ARG  A=1  BASE=${REGISTRY}/docker-hub/library/alpine:3.20   C="x y"\nFROM $BASE\n`);
  });

  test('a tag from build arguments keeps the tag and moves the name, and check accepts the result', () => {
    const result = rewrite('ARG GO_VERSION=1.26\nFROM golang:${GO_VERSION}-alpine AS go\nFROM registry.k8s.io/etcd:${ETCD_VERSION}\n');
    expect(result.output).toBe(`ARG GO_VERSION=1.26\nFROM ${REGISTRY}/docker-hub/library/golang:\${GO_VERSION}-alpine AS go\n`
      + `FROM ${REGISTRY}/k8s/etcd:\${ETCD_VERSION}\n`);
    expect(rewriteDockerfile(result.output, checking).findings.map(f => f.outcome)).toEqual([Outcome.CACHED, Outcome.CACHED]);
  });

  test('FROM bin-${TARGETOS} names one of the earlier stages: not an image', () => {
    const text = 'FROM alpine:3 AS bin-linux\nFROM alpine:3 AS bin-windows\nFROM bin-${TARGETOS}\n';
    expect(rewrite(text).findings.map(f => f.line)).toEqual([1, 2]);
    expect(rewrite('FROM alpine:3 AS bin-linux\nFROM other-${TARGETOS}\n').findings[1].outcome).toBe(Outcome.LEFT_ALONE);
  });
});

describe('what is not a FROM', () => {
  test('`from x import y` and FROM-like lines inside heredocs (<<EOF, <<-EOF, <<"EOF", two on one line)', () => {
    const text = [
      'FROM python:3.12',
      'RUN python3 <<EOF',
      'from sentence_transformers import SentenceTransformer',
      'FROM nginx:1',
      'EOF',
      'RUN <<-"SCRIPT" bash',
      '\tfrom x import y',
      '\tSCRIPT',
      'COPY <<A <<B /dest/',
      'from a import b',
      'A',
      'FROM redis:7',
      'B',
      'RUN cat <<< "from a import b"',
      'FROM alpine:3',
      '',
    ].join('\n');
    const result = rewrite(text);
    expect(result.findings.map(f => [f.line, f.image])).toEqual([[1, 'python:3.12'], [15, 'alpine:3']]);
    expect(result.output.split('\n').filter((l, i) => l !== text.split('\n')[i]).length).toBe(2);
  });

  test('a continued RUN whose next line starts with `from`', () => {
    const text = 'FROM python:3.12\nRUN pip install x && \\\n    python -c "\\\nfrom foo import bar; \\\n# a comment line inside\nFROM nginx"\n';
    expect(rewrite(text).findings.map(f => f.line)).toEqual([1]);
  });

  test('the escape directive (`# escape=``) changes the continuation character', () => {
    const text = '# escape=`\nFROM mcr.microsoft.com/windows/servercore:ltsc2022\nRUN echo a `\n  from x import y\nFROM nginx:1\n';
    expect(rewrite(text).findings.map(f => f.line)).toEqual([2, 5]);
  });

  test('a FROM written over several lines is reported, not guessed at', () => {
    const result = rewrite('FROM \\\n  nginx:1\n');
    expect(result.output).toBe('FROM \\\n  nginx:1\n');
    expect(result.findings).toEqual([{ line: 1, image: 'FROM \\', outcome: Outcome.LEFT_ALONE, note: 'FROM written over several lines' }]);
  });

  test('CRLF line endings are kept', () => {
    const result = rewrite('ARG BASE=alpine:3\r\nFROM ${BASE}\r\nRUN <<EOF\r\nfrom x import y\r\nEOF\r\n');
    expect(result.output).toBe(`ARG BASE=${REGISTRY}/docker-hub/library/alpine:3\r\nFROM \${BASE}\r\nRUN <<EOF\r\nfrom x import y\r\nEOF\r\n`);
  });
});

test('a registry port from a build argument is not a tag: the reference is left alone (second hostile review)', () => {
  const input = 'ARG PORT=5000\nFROM localhost:${PORT}/team/app:1\n';
  const result = rewrite(input);
  expect(result.output).toBe(input);
  expect(result.findings.every(f => f.outcome !== Outcome.REWRITTEN)).toBe(true);
});

test('two image arguments declared on one ARG line are both rewritten in one run (second hostile review)', () => {
  const input = 'ARG BASE=ubuntu:24.04 RUNTIME=debian:12\nFROM $BASE AS b\nFROM ${RUNTIME}\n';
  expect(rewrite(input).output).toBe(`ARG BASE=${REGISTRY}/docker-hub/library/ubuntu:24.04 RUNTIME=${REGISTRY}/docker-hub/library/debian:12\nFROM $BASE AS b\nFROM \${RUNTIME}\n`);
});

test('images pulled by COPY --from and RUN --mount from= are reported, so check cannot pass them; stages are not (second hostile review)', () => {
  const input = [
    `FROM ${REGISTRY}/docker-hub/library/alpine:3 AS build`,
    'COPY --from=build /a /b',
    'COPY --from=0 /a /c',
    'COPY --from=nginx:1.27 /etc/nginx /etc/nginx',
    'RUN --mount=type=bind,from=busybox:1,target=/bb true',
    `COPY --from=${REGISTRY}/docker-hub/library/redis:7 /x /y`,
    '',
  ].join('\n');
  const result = rewrite(input);
  expect(result.output).toBe(input);
  expect(result.findings.map(f => [f.line, f.image, f.outcome])).toEqual([
    [1, `${REGISTRY}/docker-hub/library/alpine:3`, Outcome.CACHED],
    [4, 'nginx:1.27', Outcome.LEFT_ALONE],
    [5, 'busybox:1', Outcome.LEFT_ALONE],
    [6, `${REGISTRY}/docker-hub/library/redis:7`, Outcome.CACHED],
  ]);
  expect(rewriteDockerfile(input, checking).findings.filter(f => f.outcome === Outcome.LEFT_ALONE)).toHaveLength(2);
});

describe('images BuildKit pulls that are not a plain FROM', () => {
  test('the frontend of a # syntax= directive is rewritten (spacing kept) and checked; a later # syntax= comment is not a directive', () => {
    const text = ['#  syntax = docker/dockerfile:1.7', '# check=skip=all', 'FROM alpine:3.20', '# syntax=docker/dockerfile:1', ''].join('\n');
    expect(rewriteDockerfile(text, checking).findings.map(f => `${f.line} ${f.outcome} ${f.image}`))
      .toEqual(['1 unserved docker/dockerfile:1.7', '3 unserved alpine:3.20']);
    const result = rewrite(text);
    expect(result.output.split('\n')[0]).toBe(`#  syntax = ${REGISTRY}/docker-hub/docker/dockerfile:1.7`);
    expect(result.output.split('\n').slice(1).join('\n')).toBe(text.split('\n').slice(1).join('\n').replace('alpine:3.20', `${REGISTRY}/docker-hub/library/alpine:3.20`));
    expect(rewriteDockerfile(result.output, checking).findings.map(f => f.outcome)).toEqual([Outcome.CACHED, Outcome.CACHED]);
    // a directive after a blank line is a comment: BuildKit reads directives only at the very top
    expect(rewrite(['', '# syntax=docker/dockerfile:1', 'FROM scratch', ''].join('\n')).findings).toEqual([]);
  });

  test('a reference built from build arguments with a literal registry host moves its host, the rest kept as written', () => {
    // the shape of prometheus/busybox's Dockerfile: FROM quay.io/prometheus/busybox-${OS}-${ARCH}:latest
    const text = ['ARG ARCH="amd64"', 'ARG OS="linux"', 'FROM quay.io/prometheus/busybox-${OS}-${ARCH}:latest', 'FROM ghcr.io/org/${IMAGE}:${TAG} AS tools',
      'FROM docker.io/${IMAGE}:1', 'FROM registry.example.com/${IMAGE}:1', ''].join('\n');
    const result = rewrite(text);
    expect(result.output.split('\n').slice(2, 6)).toEqual([
      `FROM ${REGISTRY}/quay/prometheus/busybox-\${OS}-\${ARCH}:latest`,
      `FROM ${REGISTRY}/ghcr/org/\${IMAGE}:\${TAG} AS tools`,
      'FROM docker.io/${IMAGE}:1',
      'FROM registry.example.com/${IMAGE}:1',
    ]);
    expect(result.findings.map(f => `${f.line} ${f.outcome} ${f.image}`)).toEqual([
      '3 rewritten quay.io/prometheus/busybox-${OS}-${ARCH}:latest',
      '4 rewritten ghcr.io/org/${IMAGE}:${TAG}',
      // Docker Hub's cache path depends on the repository (library/ for one component): left alone, and said why
      '5 left-alone docker.io/${IMAGE}:1',
      '6 unserved registry.example.com/${IMAGE}:1',
    ]);
    expect(result.findings[0].uri).toBe(`${REGISTRY}/quay/prometheus/busybox-\${OS}-\${ARCH}:latest`);
    // check: the moved ones are on the cache, the others still reported
    expect(rewriteDockerfile(result.output, checking).findings.map(f => `${f.line} ${f.outcome}`)).toEqual(['3 cached', '4 cached', '5 left-alone', '6 unserved']);
  });
});
