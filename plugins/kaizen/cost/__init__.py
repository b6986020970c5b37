"""Infrastructure cost: the cost KPIs (:mod:`kaizen.cost.measures`) and the reviews'
cost sections and "Cost" Sheet tab (:mod:`kaizen.cost.section`), from the AWS billing
export landed by :mod:`kaizen.sources.aws_cur`."""
