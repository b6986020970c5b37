"""A/B experiments: registry, statistics, readouts"""
