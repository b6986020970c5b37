# Production image: Airflow 3.3 with Kaizen's exact pins (requirements.txt).
FROM apache/airflow:slim-3.3.2-python3.11
USER airflow
COPY --chown=airflow:root requirements.txt /opt/kaizen/requirements.txt
RUN pip install --no-cache-dir uv \
 && uv pip install --no-cache --python "$(command -v python)" -r /opt/kaizen/requirements.txt \
      "apache-airflow-providers-celery" "redis"
ENV PYTHONPATH=/opt/airflow/plugins
