# Kaizen's production image: Airflow 3.3.2, the runtime pins of requirements.txt and the
# code baked in (dags/, plugins/, include/, sql/). Nothing is bind-mounted, so the same
# image runs under docker-compose.yaml and under the official Helm chart.
#   docker build -t kaizen-airflow:3.3.2 .
FROM apache/airflow:slim-3.3.2-python3.11
USER airflow

# Only the first section of requirements.txt: from the marker line on (.ci/freeze.py
# TOOLS_MARKER) come test and tool pins, which stay out of the image. A file without the
# marker stops the build rather than ship the test tools. Every line left is name==version,
# and apache-airflow is held at the base image's version.
COPY --chown=airflow:root requirements.txt /opt/kaizen/requirements.txt
RUN grep -qxF '# --- test and tool pins: not in the production image (the Dockerfile cuts here) ---' /opt/kaizen/requirements.txt \
 && sed '/^# --- test and tool pins: not in the production image/,$d' /opt/kaizen/requirements.txt > /opt/kaizen/requirements-runtime.txt \
 && pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" -r /opt/kaizen/requirements-runtime.txt

# Kaizen's code where config.REPO_ROOT (/opt/airflow) expects it
COPY --chown=airflow:root dags /opt/airflow/dags
COPY --chown=airflow:root plugins /opt/airflow/plugins
COPY --chown=airflow:root include /opt/airflow/include
COPY --chown=airflow:root sql /opt/airflow/sql
# owned by airflow, so the named volumes mounted here start writable
RUN mkdir -p /opt/airflow/out /opt/airflow/logs
ENV PYTHONPATH=/opt/airflow/plugins
