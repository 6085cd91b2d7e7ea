# SmartCourse: the container image of ONE Lambda function that the common layer cannot carry
# (devtools/template.py IMAGE_FUNCTIONS: the assistant, course search, material deletion). `sam build` builds it
# once per such function with --build-arg FUNCTION=<name> (Docker layer cache: the dependencies are built once).
# Not the server image: ./Dockerfile runs `smartcourse serve` and the workers (docker-compose.yml).
FROM public.ecr.aws/lambda/python:3.12
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
# Every runtime dependency (lancedb, pyarrow, langgraph, langchain-openai...), never the [embedded] extra:
# engines and models stay local. The package and its dependencies first, so a function change rebuilds only the end.
WORKDIR /tmp/src
COPY pyproject.toml README.md constraints.txt ./
COPY layers ./layers
COPY workflows ./workflows
# within the pins the suite last passed with (constraints.txt, `make lock`; checked there for this image's Python)
RUN pip install -c constraints.txt . && rm -rf /tmp/src
WORKDIR ${LAMBDA_TASK_ROOT}
# The same paths as the layer: SMARTCOURSE_SCHEMAS_DIR=/opt/python/event_schemas (template Globals).
COPY events/schemas /opt/python/event_schemas
ARG FUNCTION
RUN test -n "$FUNCTION" || { echo "build with --build-arg FUNCTION=<functions/ folder>" >&2; exit 1; }
COPY functions/${FUNCTION}/ ${LAMBDA_TASK_ROOT}/
CMD ["app.handler"]
