"""What the suite feeds an implementation: hypothesis strategies for configurations, time
points and shapes (`strategies`), and the cases the step clauses draw from them (`cases`)."""
