/**
 * One colour per strategy, the same in every chart of a report: Tableau 10, in the study's order,
 * then evenly spread hues for studies of more than ten strategies. The real reference set is
 * always near-black, drawn thicker.
 */
const tableau10 = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"]

export const realColour = "#1b1b1b"
export const realLabel = "real (reference)"

export const strategyColour = (index: number): string =>
  index < tableau10.length
    ? tableau10[index]!
    // Golden-angle steps keep later hues apart from each other.
    : `hsl(${Math.round((index * 137.508) % 360)}, 55%, 45%)`
