WITH entered AS (
  SELECT
    session_id,
    toDate(started_at) AS day
  FROM bard.sessions FINAL
  WHERE
    started_at >= fromUnixTimestamp64Milli({p0: Int64}, 'UTC')
), levels AS (
  SELECT
    session_id,
    toString(session_id) AS sid,
    day,
    lvl AS level,
    t1,
    t2,
    t3,
    t2 - t1 AS d2,
    t3 - t2 AS d3,
    t2 - t1 AS s2,
    t3 - t1 AS s3,
    level >= 2 AS ok2,
    level >= 3 AS ok3
  FROM entered
  LEFT JOIN (
    SELECT
      session_id,
      toInt16(level) AS lvl,
      moments[1] AS t1,
      moments[2] AS t2,
      moments[3] AS t3
    FROM (
      SELECT
        *,
        arraySort(arrayFilter(x -> x <> 0, [f1[best], f2[best], f3[best]])) AS moments
      FROM (
        SELECT
          *,
          arrayMax(lv) AS level,
          indexOf(lv, arrayMax(lv)) AS best
        FROM (
          SELECT
            *,
            arrayMap((q1, q2, q3) -> (
              q1 <> 0
            ) + (
              q2 <> 0
            ) + (
              q3 <> 0
            ), f1, f2, f3) AS lv
          FROM (
            SELECT
              *,
              arrayMap(s -> arrayMin(arrayFilter(x -> x >= s AND x <= s + w, e1)), a) AS f1,
              arrayMap(s -> arrayMin(arrayFilter(x -> x >= s AND x <= s + w, e2)), a) AS f2,
              arrayMap(s -> arrayMin(arrayFilter(x -> x >= s AND x <= s + w, e3)), a) AS f3
            FROM (
              SELECT
                *,
                arraySort(arrayConcat(e1, e2, e3)) AS a
              FROM (
                SELECT
                  session_id,
                  {p7: Int64} AS w,
                  groupArrayIf(t, (
                    kind = {p1: String} AND label = {p2: String}
                  )) AS e1,
                  groupArrayIf(t, (
                    kind = {p3: String} AND label = {p4: String}
                  )) AS e2,
                  groupArrayIf(t, (
                    kind = {p5: String} AND label = {p6: String}
                  )) AS e3
                FROM (
                  SELECT
                    session_id,
                    toUnixTimestamp64Milli(ts) AS t,
                    kind,
                    label
                  FROM bard.conversion_events
                  WHERE
                    (
                      (
                        kind = {p1: String} AND label = {p2: String}
                      )
                      OR (
                        kind = {p3: String} AND label = {p4: String}
                      )
                      OR (
                        kind = {p5: String} AND label = {p6: String}
                      )
                    )
                    AND session_id IN (
                      SELECT
                        session_id
                      FROM entered
                    )
                ) AS matching
                GROUP BY
                  session_id
              ) AS layer1
            ) AS layer2
          ) AS layer3
        ) AS layer4
      ) AS layer5
    ) AS chain
  ) AS reached
    USING (session_id)
)
SELECT
  v0,
  v1,
  v2,
  v3,
  v4,
  v5,
  v5,
  arrayMin(h2) AS lo2,
  intDiv(arrayMax(h2) - lo2, 10) + 1 AS bw2,
  arrayReduce('countResample(0, 10, 1)', arrayMap(x -> intDiv(x - lo2, bw2), h2)),
  v7,
  v8,
  arrayMin(h3) AS lo3,
  intDiv(arrayMax(h3) - lo3, 10) + 1 AS bw3,
  arrayReduce('countResample(0, 10, 1)', arrayMap(x -> intDiv(x - lo3, bw3), h3)),
  (
    arrayFilter((i, e) -> e > 0, arrayEnumerate(te), te),
    arrayFilter(e -> e > 0, te),
    arrayFilter((c, e) -> e > 0, tc, te)
  )
FROM (
  SELECT
    countIf(level >= 0) AS v0,
    countIf(level < 0) AS v1,
    countIf(level >= 1) AS v2,
    countIf(level >= 2) AS v3,
    countIf(level >= 3) AS v4,
    quantilesExactInclusiveIf(0.5, 0.9)(s2, ok2) AS v5,
    groupArrayIf(s2, level >= 2) AS h2,
    quantilesExactInclusiveIf(0.5, 0.9)(d3, ok3) AS v7,
    quantilesExactInclusiveIf(0.5, 0.9)(s3, ok3) AS v8,
    groupArrayIf(s3, level >= 3) AS h3,
    countResampleIf(0, 65536, 1)(toUInt16(day), level >= 0) AS te,
    countResampleIf(0, 65536, 1)(toUInt16(day), level >= 3) AS tc
  FROM levels
) AS summary;

WITH entered AS (
  SELECT
    session_id,
    toDate(started_at) AS day
  FROM bard.sessions FINAL
  WHERE
    started_at >= fromUnixTimestamp64Milli({p0: Int64}, 'UTC')
), levels AS (
  SELECT
    session_id,
    toString(session_id) AS sid,
    day,
    lvl AS level,
    t1,
    t2,
    t3,
    t2 - t1 AS d2,
    t3 - t2 AS d3,
    t2 - t1 AS s2,
    t3 - t1 AS s3,
    level >= 2 AS ok2,
    level >= 3 AS ok3
  FROM entered
  LEFT JOIN (
    SELECT
      session_id,
      toInt16(level) AS lvl,
      moments[1] AS t1,
      moments[2] AS t2,
      moments[3] AS t3
    FROM (
      SELECT
        *,
        arraySort(arrayFilter(x -> x <> 0, [f1[best], f2[best], f3[best]])) AS moments
      FROM (
        SELECT
          *,
          arrayMax(lv) AS level,
          indexOf(lv, arrayMax(lv)) AS best
        FROM (
          SELECT
            *,
            arrayMap((q1, q2, q3) -> (
              q1 <> 0
            ) + (
              q2 <> 0
            ) + (
              q3 <> 0
            ), f1, f2, f3) AS lv
          FROM (
            SELECT
              *,
              arrayMap(s -> arrayMin(arrayFilter(x -> x >= s AND x <= s + w, e1)), a) AS f1,
              arrayMap(s -> arrayMin(arrayFilter(x -> x >= s AND x <= s + w, e2)), a) AS f2,
              arrayMap(s -> arrayMin(arrayFilter(x -> x >= s AND x <= s + w, e3)), a) AS f3
            FROM (
              SELECT
                *,
                arraySort(arrayConcat(e1, e2, e3)) AS a
              FROM (
                SELECT
                  session_id,
                  {p7: Int64} AS w,
                  groupArrayIf(t, (
                    kind = {p1: String} AND label = {p2: String}
                  )) AS e1,
                  groupArrayIf(t, (
                    kind = {p3: String} AND label = {p4: String}
                  )) AS e2,
                  groupArrayIf(t, (
                    kind = {p5: String} AND label = {p6: String}
                  )) AS e3
                FROM (
                  SELECT
                    session_id,
                    toUnixTimestamp64Milli(ts) AS t,
                    kind,
                    label
                  FROM bard.conversion_events
                  WHERE
                    (
                      (
                        kind = {p1: String} AND label = {p2: String}
                      )
                      OR (
                        kind = {p3: String} AND label = {p4: String}
                      )
                      OR (
                        kind = {p5: String} AND label = {p6: String}
                      )
                    )
                    AND session_id IN (
                      SELECT
                        session_id
                      FROM entered
                    )
                ) AS matching
                GROUP BY
                  session_id
              ) AS layer1
            ) AS layer2
          ) AS layer3
        ) AS layer4
      ) AS layer5
    ) AS chain
  ) AS reached
    USING (session_id)
)
SELECT
  v0,
  v1,
  v2,
  v3,
  v4,
  v5,
  v5,
  arrayMin(h2) AS lo2,
  intDiv(arrayMax(h2) - lo2, 10) + 1 AS bw2,
  arrayReduce('countResample(0, 10, 1)', arrayMap(x -> intDiv(x - lo2, bw2), h2)),
  v7,
  v8,
  arrayMin(h3) AS lo3,
  intDiv(arrayMax(h3) - lo3, 10) + 1 AS bw3,
  arrayReduce('countResample(0, 10, 1)', arrayMap(x -> intDiv(x - lo3, bw3), h3)),
  (
    arrayFilter((i, e) -> e > 0, arrayEnumerate(te), te),
    arrayFilter(e -> e > 0, te),
    arrayFilter((c, e) -> e > 0, tc, te)
  ),
  v12,
  v13,
  v14,
  v15,
  v16,
  v17
FROM (
  SELECT
    countIf(level >= 0) AS v0,
    countIf(level < 0) AS v1,
    countIf(level >= 1) AS v2,
    countIf(level >= 2) AS v3,
    countIf(level >= 3) AS v4,
    quantilesExactInclusiveIf(0.5, 0.9)(s2, ok2) AS v5,
    groupArrayIf(s2, level >= 2) AS h2,
    quantilesExactInclusiveIf(0.5, 0.9)(d3, ok3) AS v7,
    quantilesExactInclusiveIf(0.5, 0.9)(s3, ok3) AS v8,
    groupArrayIf(s3, level >= 3) AS h3,
    countResampleIf(0, 65536, 1)(toUInt16(day), level >= 0) AS te,
    countResampleIf(0, 65536, 1)(toUInt16(day), level >= 3) AS tc,
    arraySort(x -> toString(x), groupArrayIf(session_id, level >= 1)) AS v12,
    arraySort(x -> toString(x), groupArrayIf(session_id, level = 0)) AS v13,
    arraySort(x -> toString(x), groupArrayIf(session_id, level >= 2)) AS v14,
    arraySort(x -> toString(x), groupArrayIf(session_id, level = 1)) AS v15,
    arraySort(x -> toString(x), groupArrayIf(session_id, level >= 3)) AS v16,
    arraySort(x -> toString(x), groupArrayIf(session_id, level = 2)) AS v17
  FROM levels
) AS summary;

WITH entered AS (
  SELECT
    session_id,
    toDate(started_at) AS day
  FROM bard.sessions FINAL
  WHERE
    started_at >= fromUnixTimestamp64Milli({p3: Int64}, 'UTC')
), levels AS (
  SELECT
    session_id,
    toString(session_id) AS sid,
    day,
    lvl AS level,
    t1,
    t2,
    t3,
    t2 - t1 AS d2,
    t3 - t2 AS d3,
    t2 - t1 AS s2,
    t3 - t1 AS s3,
    level >= 2 AS ok2,
    level >= 3 AS ok3,
    arraySlice([t1, t2, t3], 1, greatest(level, 0)) AS reached_at
  FROM entered
  LEFT JOIN (
    SELECT
      session_id,
      toInt16(level) AS lvl,
      moments[1] AS t1,
      moments[2] AS t2,
      moments[3] AS t3
    FROM (
      SELECT
        *,
        arraySort(arrayFilter(x -> x <> 0, [f1[best], f2[best], f3[best]])) AS moments
      FROM (
        SELECT
          *,
          arrayMax(lv) AS level,
          indexOf(lv, arrayMax(lv)) AS best
        FROM (
          SELECT
            *,
            arrayMap((q1, q2, q3) -> (
              q1 <> 0
            ) + (
              q2 <> 0
            ) + (
              q3 <> 0
            ), f1, f2, f3) AS lv
          FROM (
            SELECT
              *,
              arrayMap(s -> arrayMin(arrayFilter(x -> x >= s AND x <= s + w, e1)), a) AS f1,
              arrayMap(s -> arrayMin(arrayFilter(x -> x >= s AND x <= s + w, e2)), a) AS f2,
              arrayMap(s -> arrayMin(arrayFilter(x -> x >= s AND x <= s + w, e3)), a) AS f3
            FROM (
              SELECT
                *,
                arraySort(arrayConcat(e1, e2, e3)) AS a
              FROM (
                SELECT
                  session_id,
                  {p10: Int64} AS w,
                  groupArrayIf(t, (
                    kind = {p4: String} AND label = {p5: String}
                  )) AS e1,
                  groupArrayIf(t, (
                    kind = {p6: String} AND label = {p7: String}
                  )) AS e2,
                  groupArrayIf(t, (
                    kind = {p8: String} AND label = {p9: String}
                  )) AS e3
                FROM (
                  SELECT
                    session_id,
                    toUnixTimestamp64Milli(ts) AS t,
                    kind,
                    label
                  FROM bard.conversion_events
                  WHERE
                    (
                      (
                        kind = {p4: String} AND label = {p5: String}
                      )
                      OR (
                        kind = {p6: String} AND label = {p7: String}
                      )
                      OR (
                        kind = {p8: String} AND label = {p9: String}
                      )
                    )
                    AND session_id IN (
                      SELECT
                        session_id
                      FROM entered
                    )
                ) AS matching
                GROUP BY
                  session_id
              ) AS layer1
            ) AS layer2
          ) AS layer3
        ) AS layer4
      ) AS layer5
    ) AS chain
  ) AS reached
    USING (session_id)
)
SELECT
  session_id,
  level,
  reached_at
FROM levels
WHERE
  level >= {p0: UInt8}
ORDER BY
  sid NULLS FIRST
LIMIT {p1: UInt32}
OFFSET {p2: UInt32};
