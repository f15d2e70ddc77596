"""The light-field depth benchmark: centre-view disparity scored as the 4D Light Field Benchmark
(Honauer et al., ACCV 2016) scores it, on CLEVR-REMV scenes rendered with the depth pass.

``metrics`` (BadPix, MSE, Q25 on the benchmark's masks), ``regions`` (objects, floor, occlusion
band), ``predictions`` (reading and checking a submission), ``estimators`` (the constant floor and a
plane sweep), ``evaluate`` (a split's scores and reports), ``cli`` (``clevr-remv evaluate-depth``).
"""
